from mint.fraud.models import Base
from mint.kit.migrations_env import run_migrations_env

run_migrations_env(Base.metadata)
