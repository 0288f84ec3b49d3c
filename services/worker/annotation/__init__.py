"""The annotation engine behind the GATE Cloud-compatible jobs.

GATE itself is not needed: an application is a ZIP holding a pipeline of gazetteer lists and
regular-expression rules (`pipeline`), run over documents read from ZIP, TAR or ARC archives
(`documents`), chosen by annotation selectors (`selectors`) and written as GATE standoff
XML, inline XML, XCES or JSON (`formats`). Pure logic: no network, broker or database."""
