"""The daily statistics e-mail and the alerts about mailings that need a person.

``loop`` is the engine's task that claims, raises and sends them (its docstring has the
once-a-day rule and what a crash costs); ``service`` decides what is due and what a report
says, ``repository`` holds the SQL, ``render`` the words, ``mail`` and ``webhook`` the wires.
"""
