-- owl.json: the JSON codec of owl.core (C), under its own name. See
-- docs/api.md for what it guarantees that lua-cjson does not ([] vs {},
-- integers, exact doubles).
return require("owl.core").json
