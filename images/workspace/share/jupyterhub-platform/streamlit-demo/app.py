"""A demo Streamlit app: replace this file (~/app.py) with your own."""

import streamlit as st

st.title("Your Streamlit app")
st.write("This is a demo. Edit `app.py` in your home directory and reload the page to see your app.")
count = st.slider("How many rows?", min_value=1, max_value=50, value=10)
st.line_chart([[i, i * i] for i in range(count)])
