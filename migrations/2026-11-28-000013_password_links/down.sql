DROP TABLE password_links;
