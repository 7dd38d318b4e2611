-- Cloud composes of several images (compose service, osbuildd/compose/store.py). One Cloud compose id
-- stands for N composes, one per image request: the group's id is its first compose's id (the id
-- POST /compose answers), position 0 is that compose itself. Written in the same transaction as the
-- composes and their job graphs; a member's row goes when its composes row does.
CREATE TABLE compose_groups (
    id          TEXT NOT NULL,
    position    INTEGER NOT NULL,
    compose_id  TEXT NOT NULL UNIQUE REFERENCES composes(id) ON DELETE CASCADE,
    PRIMARY KEY (id, position)
);
