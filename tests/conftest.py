pytest_plugins = ["cadre_core.testing.pytest_plugin"]
