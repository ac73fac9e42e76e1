CREATE TABLE gadgets (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    widget_id bigint NOT NULL REFERENCES widgets (id)
);
