"""contact-router's Python client.

`contactrouter.v1` holds the code generated from `proto/contactrouter/v1/` (its Python
package mirrors the protobuf package, so the generated imports resolve as they are);
`contactrouter.client` is a small typed facade over it with the retry policy.
"""
