"""Camera controls: the API's control table (:mod:`.spec`), state and application (:mod:`.manager`),
day/night switching (:mod:`.daynight`) and persistence (:mod:`.store`)."""
