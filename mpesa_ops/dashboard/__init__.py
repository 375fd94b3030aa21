"""The Streamlit dashboard: app.py routes to one module per page under views/."""
