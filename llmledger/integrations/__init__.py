"""Code that runs inside your application (not in the llmledger service) to send it its calls."""
