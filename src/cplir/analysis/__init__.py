"""The paper's analyses (routing statistics, residual maps, cost table), their figures and HTML reports."""
