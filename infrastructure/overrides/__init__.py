"""Every place the checkout overrides or copies a library's internals, together (the table is in
infrastructure/__init__.py). Each module's docstring names the library, the private names it touches, the
minor version pyproject.toml pins the library to, and the upstream issue it works around: when the pin is
raised, these modules are what to read again, and their tests what to run."""
