from patterns import Parameter, Table

from .base import greet

salutation = Parameter("salutation", type=str, default="Hi")
people = Table("people")
greetings = Table("greetings", "w")
for person in people.as_stream().consume_records():
    greetings.append({"email": person["email"], "text": greet(salutation, person["name"])})
