"""The case: keys and their checks (:mod:`.keys`), rule tables (:mod:`.rules`),
budgets (:mod:`.budgets`), the training data (:mod:`.data`) and the parsed case (:mod:`.case`)."""
