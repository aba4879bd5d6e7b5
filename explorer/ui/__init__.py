"""Panel / HoloViews front end: param state and jobs (``session``, ``state``, ``jobs``), figures
(``figures``: arrays and reports -> HoloViews elements, no Panel), and ``pn.viewable.Viewer``
components usable in notebooks (``components``, ``controls``, ``compare_view``, ``dashboard``; one-click presets in ``stories``)."""
