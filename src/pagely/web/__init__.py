"""Server-rendered pages (the landing page) and the API documentation: Swagger UI, ReDoc and
the OpenAPI document."""
