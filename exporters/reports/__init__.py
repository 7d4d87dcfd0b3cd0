"""Reports that managers read: the HTML report, the Excel workbook and department scorecards."""
