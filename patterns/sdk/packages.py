"""Which package provides a module: the default node environment's packages, and the
names to tell a user to add to the app's requirements file when an import fails."""

from __future__ import annotations

from typing import Final

#: The default node environment (apps without a requirements file): the data packages
#: analysts expect, by package name → the module it is imported as. numpy, pandas, pyarrow
#: and requests come with Patterns itself; the environment adds the rest.
DEFAULT_PACKAGES: Final = {
    "numpy": "numpy", "pandas": "pandas", "requests": "requests", "scipy": "scipy",
    "scikit-learn": "sklearn", "statsmodels": "statsmodels", "matplotlib": "matplotlib",
    "httpx": "httpx", "beautifulsoup4": "bs4", "lxml": "lxml", "openpyxl": "openpyxl",
    "python-dateutil": "dateutil", "pytz": "pytz", "tqdm": "tqdm",
}

#: Modules whose package has another name (module → package to install).
_PACKAGE_OF: Final = {
    **{module: package for package, module in DEFAULT_PACKAGES.items()},
    "cv2": "opencv-python", "PIL": "Pillow", "yaml": "PyYAML", "skimage": "scikit-image",
    "Crypto": "pycryptodome", "dotenv": "python-dotenv", "jwt": "PyJWT", "docx": "python-docx",
    "attr": "attrs", "psycopg2": "psycopg2-binary", "MySQLdb": "mysqlclient",
    "snowflake": "snowflake-connector-python", "google": "google-cloud-bigquery",
    "sentence_transformers": "sentence-transformers", "magic": "python-magic",
    "serial": "pyserial", "usb": "pyusb", "zmq": "pyzmq", "git": "GitPython",
    "slugify": "python-slugify", "pptx": "python-pptx", "fitz": "PyMuPDF",
}


def package_of(module: str) -> str:
    """The package to install for ``import module`` (its top-level name)."""
    top = module.split(".")[0]
    return _PACKAGE_OF.get(top, top.replace("_", "-"))
