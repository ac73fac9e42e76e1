INSERT INTO t VALUES ('a;b', E'it\'s;', "c;d", $$;$$, $fn$ ; $fn$);
/* ; /* nested */ */ -- ;
SELECT $1;
