"""Package discovery for setuptools (everything else is in pyproject.toml).

Every package under giga_netcheck/ is found automatically, so a new subpackage cannot be left
out of the wheel. The shipped profiles live at the top of the repository (profiles/), where
people look for them; pyproject's package-dir maps them into the package as
giga_netcheck.profiles, which discovery alone cannot see, so it is named here.
"""

from setuptools import find_packages, setup

setup(packages=[*find_packages(include=["giga_netcheck", "giga_netcheck.*"]), "giga_netcheck.profiles"])
