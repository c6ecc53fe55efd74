from django.db import migrations

# Versions are immutable in the database itself, so ORM update() and raw SQL are refused
# alike. A version may be deleted only together with its strategy: the check is a deferred
# constraint trigger, because Django's CASCADE deletes the versions before the strategy
# row; at commit the strategy must be gone too.
CREATE = """
CREATE OR REPLACE FUNCTION strategies_version_refuse_update() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'strategies_strategyversion is immutable: UPDATE refused; create a new version'
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER strategies_version_immutable
    BEFORE UPDATE ON strategies_strategyversion
    FOR EACH ROW EXECUTE FUNCTION strategies_version_refuse_update();

CREATE OR REPLACE FUNCTION strategies_version_check_delete() RETURNS trigger AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM strategies_strategy WHERE id = OLD.strategy_id) THEN
        RAISE EXCEPTION 'strategies_strategyversion is immutable: DELETE refused unless its strategy is deleted'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE CONSTRAINT TRIGGER strategies_version_delete_with_strategy
    AFTER DELETE ON strategies_strategyversion
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION strategies_version_check_delete();
"""

DROP = """
DROP TRIGGER IF EXISTS strategies_version_delete_with_strategy ON strategies_strategyversion;
DROP FUNCTION IF EXISTS strategies_version_check_delete();
DROP TRIGGER IF EXISTS strategies_version_immutable ON strategies_strategyversion;
DROP FUNCTION IF EXISTS strategies_version_refuse_update();
"""


class Migration(migrations.Migration):
    dependencies = [("strategies", "0001_initial")]
    operations = [migrations.RunSQL(CREATE, DROP)]
