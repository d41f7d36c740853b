from mint.kit.migrations_env import run_migrations_env
from mint.kyc.models import Base

run_migrations_env(Base.metadata)
