"""Loss terms; importing this package registers them (one explicit import per module)."""

from gan_retouch.losses import adversarial  # noqa: F401, I001  (one line per module, kept ungrouped)
from gan_retouch.losses import distill  # noqa: F401
from gan_retouch.losses import keep  # noqa: F401
from gan_retouch.losses import masks  # noqa: F401
from gan_retouch.losses import perceptual  # noqa: F401
from gan_retouch.losses import pixel  # noqa: F401
