"""The frontend: user source (libcst) -> IR.

`load_package` reads a package at build time; `signature_of_function` reads one live function
at development time; both produce identical `ir.Signature`s. Problems are reported together
as one `CompileError`. Modules: `errors` (diagnostics), `docstrings` (Google-style parsing),
`scope` (module-level name bindings), `discover` (finding decorated functions), `types`
(annotations -> TypeSchema), `signature` (assembling a Signature), `package` (files, walking,
caching).
"""

from promptcast.frontend.discover import DecoratedFunction, Discovery, PromptcastImport
from promptcast.frontend.docstrings import ParsedDocstring, parse_docstring
from promptcast.frontend.errors import CompileError, Diagnostic
from promptcast.frontend.package import ModuleInfo, Package, load_package, signature_of_function

__all__ = [
    "CompileError",
    "DecoratedFunction",
    "Diagnostic",
    "Discovery",
    "ModuleInfo",
    "Package",
    "ParsedDocstring",
    "PromptcastImport",
    "load_package",
    "parse_docstring",
    "signature_of_function",
]
