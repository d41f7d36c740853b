from mint.kit.migrations_env import run_migrations_env
from mint.wallet.models import Base

run_migrations_env(Base.metadata)
