"""baseline schema

Revision ID: 0001_baseline
Revises:
Create Date: 2026-11-24 17:20:55.509751
"""
from alembic import op
import sqlalchemy as sa


revision = '0001_baseline'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('dead_letters',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('time', sa.DateTime(timezone=True), nullable=False),
    sa.Column('component', sa.String(length=50), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('event_id', sa.String(length=200), nullable=False),
    sa.Column('event_type', sa.String(length=200), nullable=False),
    sa.Column('payload', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('dead_letters', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dead_letters_time'), ['time'], unique=False)

    op.create_table('deliveries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('event_key', sa.String(length=300), nullable=False),
    sa.Column('event_type', sa.String(length=200), nullable=False),
    sa.Column('trigger', sa.String(length=200), nullable=False),
    sa.Column('payload', sa.Text(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('tries', sa.Integer(), nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.create_index('ix_deliveries_event', ['event_key'], unique=False)
        batch_op.create_index('ix_deliveries_state_due', ['state', 'due_at'], unique=False)

    op.create_table('jobs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('working_directory', sa.String(length=500), nullable=False),
    sa.Column('source_event', sa.String(length=300), nullable=True),
    sa.Column('spec', sa.JSON(), nullable=False),
    sa.Column('cancelled', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('source_event')
    )
    op.create_table('metadata_items',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('owner_kind', sa.String(length=10), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('value', sa.JSON(), nullable=True),
    sa.Column('unit', sa.String(length=20), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('owner_kind', 'owner_id', 'key', name='uq_metadata_owner_key')
    )
    with op.batch_alter_table('metadata_items', schema=None) as batch_op:
        batch_op.create_index('ix_metadata_owner', ['owner_kind', 'owner_id'], unique=False)

    op.create_table('processed_events',
    sa.Column('handler', sa.String(length=50), nullable=False),
    sa.Column('event_key', sa.String(length=300), nullable=False),
    sa.Column('time', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('handler', 'event_key')
    )
    op.create_table('watch_rules',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('prefix', sa.String(length=500), nullable=False),
    sa.Column('task_types', sa.JSON(), nullable=False),
    sa.Column('job_template', sa.JSON(), nullable=True),
    sa.Column('params', sa.JSON(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('prefix')
    )
    op.create_table('tasks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('job_id', sa.Integer(), nullable=False),
    sa.Column('parent_id', sa.Integer(), nullable=True),
    sa.Column('path', sa.String(length=500), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('task_type', sa.String(length=100), nullable=False),
    sa.Column('working_directory', sa.String(length=500), nullable=False),
    sa.Column('params', sa.JSON(), nullable=False),
    sa.Column('fully_configured', sa.Boolean(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('attempt_count', sa.Integer(), nullable=False),
    sa.Column('retry_science_failures', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['parent_id'], ['tasks.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_tasks_job_id'), ['job_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_tasks_parent_id'), ['parent_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_tasks_state'), ['state'], unique=False)
        batch_op.create_index(batch_op.f('ix_tasks_task_type'), ['task_type'], unique=False)

    op.create_table('attempts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('task_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('queued_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('host', sa.String(length=200), nullable=False),
    sa.Column('pid', sa.Integer(), nullable=True),
    sa.Column('error', sa.Boolean(), nullable=False),
    sa.Column('error_kind', sa.String(length=20), nullable=False),
    sa.Column('error_text', sa.Text(), nullable=False),
    sa.Column('all_products_passed_qc', sa.Boolean(), nullable=True),
    sa.Column('wall_s', sa.Float(), nullable=True),
    sa.Column('cpu_s', sa.Float(), nullable=True),
    sa.Column('cpu_children_s', sa.Float(), nullable=True),
    sa.ForeignKeyConstraint(['task_id'], ['tasks.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('task_id', 'number', name='uq_attempt_number')
    )
    with op.batch_alter_table('attempts', schema=None) as batch_op:
        batch_op.create_index('ix_attempts_state_heartbeat', ['state', 'heartbeat_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_attempts_task_id'), ['task_id'], unique=False)

    op.create_table('products',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=1000), nullable=False),
    sa.Column('directory', sa.String(length=1000), nullable=False),
    sa.Column('filename', sa.String(length=500), nullable=False),
    sa.Column('semantic_type', sa.String(length=100), nullable=False),
    sa.Column('mime_type', sa.String(length=100), nullable=False),
    sa.Column('generator_task_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['generator_task_id'], ['tasks.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('key')
    )
    with op.batch_alter_table('products', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_products_directory'), ['directory'], unique=False)

    op.create_table('task_inputs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('task_id', sa.Integer(), nullable=False),
    sa.Column('semantic_name', sa.String(length=100), nullable=False),
    sa.Column('key', sa.String(length=1000), nullable=False),
    sa.ForeignKeyConstraint(['task_id'], ['tasks.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('task_inputs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_task_inputs_key'), ['key'], unique=False)
        batch_op.create_index(batch_op.f('ix_task_inputs_task_id'), ['task_id'], unique=False)

    op.create_table('task_metadata_inputs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('task_id', sa.Integer(), nullable=False),
    sa.Column('source_task_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['source_task_id'], ['tasks.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['task_id'], ['tasks.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('task_metadata_inputs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_task_metadata_inputs_source_task_id'), ['source_task_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_task_metadata_inputs_task_id'), ['task_id'], unique=False)

    op.create_table('task_outputs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('task_id', sa.Integer(), nullable=False),
    sa.Column('semantic_name', sa.String(length=100), nullable=False),
    sa.Column('key', sa.String(length=1000), nullable=False),
    sa.ForeignKeyConstraint(['task_id'], ['tasks.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('key')
    )
    with op.batch_alter_table('task_outputs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_task_outputs_task_id'), ['task_id'], unique=False)

    op.create_table('log_messages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('attempt_id', sa.Integer(), nullable=True),
    sa.Column('time', sa.DateTime(timezone=True), nullable=False),
    sa.Column('severity', sa.String(length=10), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['attempt_id'], ['attempts.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('log_messages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_log_messages_attempt_id'), ['attempt_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_log_messages_severity'), ['severity'], unique=False)
        batch_op.create_index(batch_op.f('ix_log_messages_time'), ['time'], unique=False)

    op.create_table('product_versions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('product_id', sa.Integer(), nullable=False),
    sa.Column('attempt_id', sa.Integer(), nullable=True),
    sa.Column('event_id', sa.String(length=100), nullable=True),
    sa.Column('etag', sa.String(length=100), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('object_version', sa.String(length=200), nullable=True),
    sa.Column('passed_qc', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['attempt_id'], ['attempts.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['product_id'], ['products.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('event_id'),
    sa.UniqueConstraint('product_id', 'attempt_id', name='uq_version_attempt')
    )
    with op.batch_alter_table('product_versions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_product_versions_product_id'), ['product_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('product_versions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_product_versions_product_id'))

    op.drop_table('product_versions')
    with op.batch_alter_table('log_messages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_log_messages_time'))
        batch_op.drop_index(batch_op.f('ix_log_messages_severity'))
        batch_op.drop_index(batch_op.f('ix_log_messages_attempt_id'))

    op.drop_table('log_messages')
    with op.batch_alter_table('task_outputs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_task_outputs_task_id'))

    op.drop_table('task_outputs')
    with op.batch_alter_table('task_metadata_inputs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_task_metadata_inputs_task_id'))
        batch_op.drop_index(batch_op.f('ix_task_metadata_inputs_source_task_id'))

    op.drop_table('task_metadata_inputs')
    with op.batch_alter_table('task_inputs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_task_inputs_task_id'))
        batch_op.drop_index(batch_op.f('ix_task_inputs_key'))

    op.drop_table('task_inputs')
    with op.batch_alter_table('products', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_products_directory'))

    op.drop_table('products')
    with op.batch_alter_table('attempts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_attempts_task_id'))
        batch_op.drop_index('ix_attempts_state_heartbeat')

    op.drop_table('attempts')
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_tasks_task_type'))
        batch_op.drop_index(batch_op.f('ix_tasks_state'))
        batch_op.drop_index(batch_op.f('ix_tasks_parent_id'))
        batch_op.drop_index(batch_op.f('ix_tasks_job_id'))

    op.drop_table('tasks')
    op.drop_table('watch_rules')
    op.drop_table('processed_events')
    with op.batch_alter_table('metadata_items', schema=None) as batch_op:
        batch_op.drop_index('ix_metadata_owner')

    op.drop_table('metadata_items')
    op.drop_table('jobs')
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_index('ix_deliveries_state_due')
        batch_op.drop_index('ix_deliveries_event')

    op.drop_table('deliveries')
    with op.batch_alter_table('dead_letters', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dead_letters_time'))

    op.drop_table('dead_letters')
