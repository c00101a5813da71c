"""Storage: the port every backend implements (``port``), the URL that picks one (``urls``,
``factory``), and one sub-package per backend with its adapter, helpers and ``.sql`` files
(``sqlite``, ``postgres``). Only the factory imports an adapter, lazily."""
