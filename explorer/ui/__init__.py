"""Panel / HoloViews front end.  Plots are pure functions (arrays -> HoloViews elements); the
state lives in param classes; components are ``pn.viewable.Viewer`` subclasses usable in notebooks."""
