"""Generators and discriminators; importing this package registers them (one explicit import per module)."""

from gan_retouch.nets import autoretouch  # noqa: F401, I001  (one line per module, kept ungrouped)
from gan_retouch.nets import discriminators  # noqa: F401
from gan_retouch.nets import gated  # noqa: F401
from gan_retouch.nets import pix2pix  # noqa: F401
from gan_retouch.nets import resunet  # noqa: F401
from gan_retouch.nets import student  # noqa: F401
from gan_retouch.nets import student_fast  # noqa: F401
from gan_retouch.nets import template  # noqa: F401
from gan_retouch.nets import u2net_lite  # noqa: F401
