"""The log service: stores every task's log entries and serves them."""
