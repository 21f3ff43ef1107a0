"""How a model runs at inference: one plan (``plan``), its working size and coarse pass (``work_size``), tiles
(``tiling``), running it (``run``) and measuring it (``profile``). Validation, `test`, `retouch`, `bench` and
`export` all go through here; nothing is imported until a module is asked for."""
