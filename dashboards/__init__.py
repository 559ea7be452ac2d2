"""The Streamlit dashboards: a multipage app (`dashboards/app.py`) reading only the service's HTTP
read API (`client`), drawing Plotly figures (`figures`) in one palette (`palette`)."""
