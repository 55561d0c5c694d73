-- Client addresses each user logged in from with the right password. The per-email lock
-- (many addresses guessing one account) does not apply to these, so an attacker cannot lock
-- the owner out; login_throttle keys are now 'addr:<address>', 'pair:<address> <email>' and
-- 'email:<email>'.
CREATE TABLE login_known_addresses (
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    address text NOT NULL,
    last_login_at timestamptz NOT NULL,
    PRIMARY KEY (user_id, address)
);
CREATE INDEX login_known_addresses_last_login ON login_known_addresses (last_login_at);  -- pruning
