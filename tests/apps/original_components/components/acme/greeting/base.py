def greet(salutation, name):
    return f"{salutation}, {name}!"
