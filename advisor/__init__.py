"""The router threshold advisor (seed §3.13): from an offline replay or a route's logged router
scores, the cascade threshold to start with, what each threshold would escalate and cost, and
whether the scores are dual-peaked enough that classifier routing beats a cascade."""
