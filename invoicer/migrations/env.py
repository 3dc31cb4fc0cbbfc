from alembic import context

from invoicer import db

config = context.config
connectable = config.attributes.get("connection")


def run(connection):
    context.configure(connection=connection, target_metadata=db.metadata, render_as_batch=True,
                      compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


if connectable is not None:
    run(connectable)
else:
    with db.engine_for(config.get_main_option("sqlalchemy.url")).connect() as conn:
        run(conn)
