"""The ``sampletune`` subcommands of each family (app layer): ``swift``, ``autosampling``,
``budget-table``, ``demo``, and the flag helpers they share with ``sampletune.cli`` (``args``)."""
