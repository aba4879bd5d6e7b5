"""The modelling core: numpy, scipy and pywavelets only (never panel, holoviews or bokeh)."""
