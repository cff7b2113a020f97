"""Lists the functions a driver.py defines at its top level, without running it (publish time);
names starting with "_" are the driver's own helpers. Reads the source on stdin; prints a JSON
list of names, or {"error": "..."} and exits 1."""
import ast
import json
import sys

source = sys.stdin.buffer.read()
try:
    tree = ast.parse(source, filename="driver.py")
except SyntaxError as err:
    print(json.dumps({"error": "driver.py:%s:%s: %s" % (err.lineno, err.offset, err.msg)}))
    sys.exit(1)
except ValueError as err:  # e.g. NUL bytes in the source
    print(json.dumps({"error": "driver.py: %s" % err}))
    sys.exit(1)
names = sorted({node.name for node in tree.body
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not node.name.startswith("_")})
print(json.dumps(names))
