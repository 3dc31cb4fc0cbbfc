"""Google Workspace: Gmail as an email channel (`gmail`), Drive for filing the PDFs (`drive`)."""
