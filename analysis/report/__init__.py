"""Writing the analysis: CSV tables, figures, thumbnails and the one-file report.html."""
