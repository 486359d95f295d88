"""What both front ends show, rendered once (issue 23: one door per front end).

Each function gathers what a screen or a task shows and turns it into text cells, with
a *tone* where the text is coloured (``good``, ``bad``, ``warn``, ``muted``): the task
prints them with Rich markup, the console puts them in its tables, and each picks its
own colours for a tone. Neither front end words, orders or counts anything itself, so
`invoke deploy-status` and the console's Deploy screen cannot drift apart.

The package sits beside the guard rails, above the procedures (pyproject's import-linter
layers): a view may read what any layer below it gathers, and nothing but a front end
imports a view.
"""
