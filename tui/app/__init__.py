"""The Textual app: screens, widgets and the job watcher that feeds them. Renders state, sends commands."""
