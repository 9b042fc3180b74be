"""What the app tests share: a dashboard built as a server session builds it."""
from bokeh.document import Document
from panel.io.location import Location

from gle_lab.main import Dashboard


def served(query="", preset="phase_inversion"):
    """A dashboard as a server session builds it: root in a document, then the link's state
    (``query``, e.g. ``"?preset=chain&seed=1"``) applied through its location. Returns
    ``(dashboard, location)``."""
    d = Dashboard(preset=preset)
    d.layout.get_root(Document())
    loc = Location(search=query)
    d.sharing.sync_location(loc)
    return d, loc
