"""The site database: SQLAlchemy 2 models (`models.py`), engines and sessions for SQLite
(WAL) and PostgreSQL (`db.py`), and the Alembic migrations. May import the domain's
vocabularies (the allowed values of its columns) and nothing else from peerdp.
"""
