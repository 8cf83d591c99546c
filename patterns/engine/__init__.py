"""The engine: runs an app's nodes on a store, records runs, schedules them."""
