"""One module per page, each with render(); st.navigation runs the file, whose last
lines call render()."""
