"""Studio widgets: the persona library list, the persona editor form and the portrait chooser."""
