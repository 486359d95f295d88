"""ocean-tui, the Textual operations console. It arrives with the console issue; the
core it will call (``ocean``) is already free of any front-end import."""
