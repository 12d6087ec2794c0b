"""The HTTP layer: Litestar controllers, request/response Structs, cookies, errors. No SQL."""
