"""The PostgreSQL test server is real: a round trip through SQLAlchemy on 127.0.0.1."""

import sqlalchemy as sa


def test_postgres_round_trip(postgres_url: str) -> None:
    engine = sa.create_engine(postgres_url)
    with engine.begin() as con:
        con.execute(sa.text("create table t (id int primary key, v text)"))
        con.execute(sa.text("insert into t values (1, 'a'), (2, 'b')"))
    with engine.connect() as con:
        version = con.execute(sa.text("select version()")).scalar_one()
        rows = con.execute(sa.text("select v from t order by id")).scalars().all()
    engine.dispose()
    assert version.startswith("PostgreSQL")
    assert rows == ["a", "b"]
    assert "127.0.0.1" in postgres_url
