"""The dashboard's entry point: only the router. It registers the pages the viewer's
role may see; each page draws its own sidebar filters and content."""

import streamlit as st

from mpesa_ops.dashboard import context, nav

st.set_page_config(page_title="M-Pesa operations", page_icon=":material/payments:", layout="wide")
role = context.role()
context.viewer_banner(role)
pages = [st.Page(nav.page_path(page.name), title=page.title, icon=page.icon, url_path=page.name,
                 default=(index == 0)) for index, page in enumerate(nav.pages_for(role))]
st.navigation(pages).run()
