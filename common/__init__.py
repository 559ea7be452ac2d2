"""The bottom of the stack: small pure modules every layer may import (formatting numbers for
people, dashboard deep links, the service API's query parameters, JSON-safe result rows, the
progress contract). Nothing here imports the rest of the project."""
